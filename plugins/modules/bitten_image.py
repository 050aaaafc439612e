"""Ansible front end of bitten.provision.image: a provisioning image, built on the controller unless cached."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: bitten_image
short_description: build an OS image from its recipe unless the cache has this recipe's build
description:
  - Builds the image with bitten.provision.image (debootstrap, the kernel, bitten's boot tools, a zstd cpio), the
    same code as C(bitten provision images --build), into the image cache on the controller. The recipe's hash
    names the build, so an unchanged recipe changes nothing; a build is renamed into place only when complete,
    so a failed build leaves the cache (and the provisioner) as they were.
  - Runs on the controller (C(delegate_to: localhost)) with a Python that can import bitten, as root.
  - In check mode nothing is built; the result says whether a build would run.
options:
  name:
    description: The image's name (a key of bitten_provision.images).
    type: str
    required: true
  recipe:
    description: The image's recipe as the model has it (bitten_provision.images.<name>).
    type: dict
    required: true
  id:
    description: The build's id (<name>-<hash>) the model expects; a mismatch fails before anything is built.
    type: str
    required: true
  cache:
    description: The image cache; bitten's default (BITTEN_IMAGE_CACHE, /var/cache/bitten/images) when empty.
    type: path
  build:
    description: Build when the cache lacks the image; false fails instead.
    type: bool
    default: true
"""

RETURN = r"""
id:
  description: the build's id (<name>-<hash>)
  type: str
  returned: always
path:
  description: the build's directory in the cache (vmlinuz, rootfs.cpio.zst, initrd-disk.img, manifest.json)
  type: str
  returned: success
manifest:
  description: the build's manifest (recipe, kernel, each file's sha256 and size, build time)
  type: dict
  returned: when the image exists
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "recipe": {"type": "dict", "required": True},
            "id": {"type": "str", "required": True},
            "cache": {"type": "path"},
            "build": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    from pathlib import Path

    from pydantic import ValidationError

    from bitten.provision import image
    from bitten.provision.recipe import Recipe
    from bitten.site.model import ImageRecipe

    params: dict[str, Any] = module.params
    try:
        recipe = Recipe(params["name"], ImageRecipe.model_validate(params["recipe"]))
    except ValidationError as exc:
        module.fail_json(msg=f"image {params['name']}: invalid recipe: {exc}")
    if recipe.id != params["id"]:
        module.fail_json(msg=f"image {params['name']}: the recipe hashes to {recipe.id}, the site expects "
                             f"{params['id']} (is this bitten the one the playbook's lookups use?)", id=recipe.id)
    cache = Path(params["cache"]) if params["cache"] else image.cache_dir()
    found = image.find(recipe, cache)
    if found is not None:
        module.exit_json(changed=False, id=recipe.id, path=str(found.path), manifest=found.manifest)
    if module.check_mode:
        module.exit_json(changed=True, id=recipe.id, path=str(cache / recipe.id), msg="would build the image")
    if not params["build"]:
        module.fail_json(msg=f"image {recipe.id} is not in {cache}: build it with "
                             "`bitten provision images INVENTORY --build`", id=recipe.id)
    lines: list[str] = []
    try:
        built, _ = image.ensure(recipe, cache, log=lines.append)
    except image.ImageError as exc:
        module.fail_json(msg=f"building image {recipe.id} failed; the cache and the served image are unchanged: "
                             f"{exc}", id=recipe.id, log=lines[-50:])
    module.exit_json(changed=True, id=recipe.id, path=str(built.path), manifest=built.manifest, log=lines[-20:])


if __name__ == "__main__":
    main()
