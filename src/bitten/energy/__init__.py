"""The cluster as a part of the energy system: grid and heat signals, policies, the energy controller, the what-if
simulator and energy per job."""
