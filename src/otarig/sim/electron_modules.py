"""The Electron's Device OS modules and their dependencies (docs/reference/particle-ota.md §2.7, §2.9).

Facts from device-os (tags named per fact), used by the simulated Electron (what HAL_FLASH_End
accepts, what boots) and by the simulated cloud's safe-mode healer (what to send next):

- module versions of the Device OS releases that exist for the Electron after 2.3.1 (`build/version.mk`
  VERSION at each tag) and the bootloader each release carries (`modules/shared/system_module_version.mk`
  BOOTLOADER_VERSION);
- the system parts' dependencies (`modules/electron/system-part{1,2,3}/build.mk` with
  `modules/shared/stm32f2xx/part{1,2,3}_build.mk` and `system_module_version.mk`, v2.3.1 and v3.3.1
  alike): module 3 needs system part 2 >= 110 (0.6.4); module 1 needs module 3 of its own version;
  module 2 needs module 1 of its own version and the bootloader >= 1003 (BOOTLOADER_DEPENDENCY, Gen 2).
  A move to a new version therefore installs in the order 3 -> 1 -> 2.
- the dependency check itself (`hal/src/stm32f2xx/ota_flash_hal_stm32f2xx.cpp` v2.3.1
  `validate_module_dependencies` ~161-200, `validate_module_dependencies_full` ~103-159), which
  HAL_FLASH_End runs with userDepsOptional = true (~350-353; `hal/src/stm32/ota_module.cpp` ~86).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import firmware
from ..firmware import Dependency

FUNCTION_BOOTLOADER = 2
SYSTEM = firmware.FUNCTION_SYSTEM_PART
USER = firmware.FUNCTION_USER_PART

#: module version -> (release, bootloader module version); every row lists the Electron among its
#: platforms in device-os v3.3.1 system/system-versions.md. 2.3.1 is the last 2.x LTS; no Device OS
#: after 3.3.x runs on an Electron (docs/reference/particle-ota.md "Platform scope").
RELEASES: dict[int, tuple[str, int]] = {
    2302: ("2.3.1", 1006),
    3005: ("3.0.0", 1005),
    3103: ("3.1.0", 1100),
    3201: ("3.2.0", 1100),
    3301: ("3.3.0", 1100),
    3302: ("3.3.1", 1100),
}
#: modules/shared/system_module_version.mk: BOOTLOADER_DEPENDENCY = 1003 for PLATFORM_GEN 2 (v2.3.1, v3.3.1)
GEN2_BOOTLOADER_DEPENDENCY = 1003
#: modules/shared/system_module_version.mk: RELEASE_064_MODULE_VERSION, module 3's floor on system part 2
RELEASE_064_MODULE_VERSION = 110
#: the order a move between versions installs in (each part depends on the one before it)
INSTALL_ORDER = (3, 1, 2)

_FUNCTION_LETTER = {FUNCTION_BOOTLOADER: "b", SYSTEM: "s", USER: "u"}


def release_name(module_version: int) -> str:
    return RELEASES[module_version][0] if module_version in RELEASES else f"module {module_version}"


def bootloader_of(module_version: int) -> int:
    return RELEASES[module_version][1]


def release_for(required: int) -> int | None:
    """The oldest Electron release whose system module version meets `required` (None: there is none)."""
    fits = [v for v in RELEASES if v >= required]
    return min(fits) if fits else None


def system_part_dependencies(index: int, version: int) -> tuple[Dependency, ...]:
    """What system part `index` of `version` declares (see the module docstring for the makefiles)."""
    if index == 3:
        return (Dependency(SYSTEM, 2, RELEASE_064_MODULE_VERSION),)
    if index == 1:
        return (Dependency(SYSTEM, 3, version),)
    if index == 2:
        return (Dependency(SYSTEM, 1, version), Dependency(FUNCTION_BOOTLOADER, 0, GEN2_BOOTLOADER_DEPENDENCY))
    raise ValueError(f"the Electron has system parts 1-3, not {index}")


@dataclass(frozen=True)
class Module:
    """One module as the device describes it (the `m` list of the describe / spark/status/safe-mode)."""

    function: int
    index: int
    version: int
    dependencies: tuple[Dependency, ...] = ()

    def describe(self) -> dict:
        """docs/reference/particle-ota.md §1.6: `f` b/s/u, `n` index, `v` version, `d` dependencies."""
        return {"f": _FUNCTION_LETTER.get(self.function, str(self.function)), "n": str(self.index),
                "v": self.version,
                "d": [{"f": _FUNCTION_LETTER.get(d.module_function, str(d.module_function)),
                       "n": str(d.module_index), "v": d.module_version} for d in self.dependencies]}


def _installed(modules: list[Module], function: int, index: int) -> Module | None:
    return next((m for m in modules if m.function == function and m.index == index), None)


def unmet_dependency(module: Module, installed: list[Module], *, user_optional: bool) -> str | None:
    """`validate_module_dependencies` (+ `_full` for a system part): why `module` cannot go in
    beside `installed`, or None. HAL_FLASH_End passes user_optional=True, which also skips a
    system part's bootloader dependency (dependency2); at boot nothing is optional."""
    deps = module.dependencies
    if module.function == USER and user_optional:
        deps = ()
    for n, dep in enumerate(deps):
        if n == 1 and dep.module_function == FUNCTION_BOOTLOADER and user_optional:
            continue
        have = _installed(installed, dep.module_function, dep.module_index)
        if have is None or have.version < dep.module_version:
            got = "none" if have is None else have.version
            return (f"needs {firmware.MODULE_FUNCTIONS.get(dep.module_function, dep.module_function)} "
                    f"{dep.module_index} >= {dep.module_version}, has {got}")
    if module.function == SYSTEM:
        # _full: the system parts that stay must still be satisfied by the replacement
        for other in installed:
            if other.function != SYSTEM or other.index == module.index:
                continue
            for dep in other.dependencies:
                if (dep.module_function, dep.module_index) == (module.function, module.index) \
                        and module.version < dep.module_version:
                    return (f"system part {other.index} ({other.version}) needs system part "
                            f"{module.index} >= {dep.module_version}")
    return None


def modules_from_describe(describe: tuple | list) -> list[Module]:
    """The `Module`s of a describe list (`Module.describe()` dicts, as the cloud keeps them)."""
    letters = {v: k for k, v in _FUNCTION_LETTER.items()}
    return [Module(letters[d["f"]], int(d["n"]), int(d["v"]),
                   tuple(Dependency(letters[x["f"]], int(x["n"]), int(x["v"])) for x in d.get("d", ())))
            for d in describe]


def heal_step(describe: tuple | list, required: int, *, bootloader_on_major_move: bool) -> Module | None:
    """What the cloud's safe-mode healer sends next to a device whose describe is `describe` and whose
    app needs system part 2 >= `required` (docs/reference/particle-ota.md §2.7, §2.9, §7.8.6; §8.12 for
    the bootloader policy). One module per OTA and reset: the bootloader first when it is needed,
    then the system parts of the oldest release that meets `required`, each only once the modules it
    depends on are in (HAL_FLASH_End would reject it otherwise): 3 -> 1 -> 2 on the Electron.
    None: nothing to send, or no Electron release meets `required` (the device stays in safe mode)."""
    release = release_for(required)
    if release is None:
        return None
    mods = modules_from_describe(describe)
    parts = {m.index: m.version for m in mods if m.function == SYSTEM}
    behind = sorted(i for i, v in parts.items() if v < release)
    have_boot = next((m.version for m in mods if m.function == FUNCTION_BOOTLOADER), 0)
    target_boot = bootloader_of(release)
    # the bootloader a system part asks for: an installed one, or one of the release's
    deps = [d for m in mods if m.function == SYSTEM for d in m.dependencies]
    deps += [d for i in parts for d in system_part_dependencies(i, release)]
    needed_boot = max((d.module_version for d in deps if d.module_function == FUNCTION_BOOTLOADER), default=0)
    if have_boot < needed_boot:
        return Module(FUNCTION_BOOTLOADER, 0, max(target_boot, needed_boot))
    if not behind:
        return None
    major_move = release // 1000 != min(parts.values()) // 1000
    if bootloader_on_major_move and major_move and target_boot > have_boot:
        return Module(FUNCTION_BOOTLOADER, 0, target_boot)
    for i in behind:
        candidate = Module(SYSTEM, i, release, system_part_dependencies(i, release))
        if unmet_dependency(candidate, mods, user_optional=True) is None:
            return candidate
    return None
