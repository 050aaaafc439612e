"""Stand-ins for what cannot run here: emulators, simulators, fakes and TEST DOUBLEs (never in the product)."""
