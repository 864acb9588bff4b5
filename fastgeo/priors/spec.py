"""Priors from short text specs, for the command line: ``parse("studentt:10,df=3")``.

Grammar: ``NAME:D[,KEY=VALUE]...`` with D the latent dimension and VALUE a number.

=====================================  ==========================================================
``normal:D``                           N(0, I_D)
``gaussian:D[,mean=M][,std=S]``        N(M 1, S^2 I_D) (defaults M = 0, S = 1)
``semicircle:D``                       the paper's three-Gaussian horseshoe, D >= 2
``kilcher:D[,shape=K][,scale=T]``      |z| ~ Gamma(K, T), uniform direction (Kilcher et al.);
                                       defaults K = 1/2 and T = sqrt(D / (K (K + 1))), which
                                       makes E|z|^2 = D as under N(0, I_D)
``studentt:D,df=NU``                   multivariate Student-t, NU degrees of freedom
``cauchy:D``                           multivariate Cauchy (Student-t with NU = 1)
``ball:D[,radius=R]``                  uniform on the ball of radius R (default 1)
``box:D[,low=A][,high=B]``             uniform on the cube [A, B]^D (defaults -1, 1)
=====================================  ==========================================================
"""
from __future__ import annotations

import math

from .mixture import semicircle
from .radial import Cauchy, GammaNorm, Gaussian, StandardNormal, StudentT, UniformBall
from .uniform import UniformBox


def _kilcher(d, shape=0.5, scale=None):
    if scale is None and shape > 0:
        scale = math.sqrt(d / (shape * (shape + 1.0)))
    return GammaNorm(d, shape=shape, scale=scale)


def _box(d, low=-1.0, high=1.0):
    return UniformBox([low] * d, [high] * d)


def _gaussian(d, mean=0.0, std=1.0):
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a finite number > 0, got {std!r}")
    return Gaussian([mean] * d, std ** 2)


#: name -> (builder(D, **keys), required keys, optional keys, description)
FAMILIES = {
    "normal": (lambda d: StandardNormal(d), (), (), "N(0, I_D)"),
    "gaussian": (_gaussian, (), ("mean", "std"), "N(mean 1, std^2 I_D)"),
    "semicircle": (lambda d: semicircle(d), (), (), "the paper's three-Gaussian horseshoe"),
    "kilcher": (_kilcher, (), ("shape", "scale"), "|z| ~ Gamma(shape, scale), Kilcher et al."),
    "studentt": (lambda d, df: StudentT(d, df), ("df",), (), "multivariate Student-t"),
    "cauchy": (lambda d: Cauchy(d), (), (), "multivariate Cauchy"),
    "ball": (lambda d, radius=1.0: UniformBall(d, radius), (), ("radius",), "uniform on a ball"),
    "box": (_box, (), ("low", "high"), "uniform on the cube [low, high]^D"),
}

#: one line per family, for --help texts
SPEC_HELP = ("normal:D | gaussian:D[,mean=M][,std=S] | semicircle:D | kilcher:D[,shape=K][,scale=T] | "
             "studentt:D,df=NU | cauchy:D | ball:D[,radius=R] | box:D[,low=A][,high=B]")


def parse(spec: str):
    """The prior a spec names (see the module docstring); ValueError saying what is wrong."""
    if not isinstance(spec, str):
        raise TypeError(f"a prior spec is a string such as 'normal:64', got {type(spec).__name__}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in FAMILIES:
        raise ValueError(f"unknown prior {name!r} in {spec!r}; known: {', '.join(FAMILIES)} ({SPEC_HELP})")
    build, required, optional, _ = FAMILIES[name]
    parts = [p.strip() for p in rest.split(",")] if sep else []
    if not parts or not parts[0]:
        raise ValueError(f"prior spec {spec!r} needs a dimension: {name}:D, e.g. {name}:64")
    try:
        dim = int(parts[0])
    except ValueError:
        dim = 0
    if dim < 1 or str(dim) != parts[0].lstrip("+"):
        raise ValueError(f"prior spec {spec!r}: the dimension must be a positive integer, got {parts[0]!r}")
    keys = {}
    for part in parts[1:]:
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or key not in required + optional:
            allowed = ", ".join(required + optional) or "none"
            raise ValueError(f"prior spec {spec!r}: unexpected {part!r}; {name} takes KEY=VALUE options: {allowed}")
        if key in keys:
            raise ValueError(f"prior spec {spec!r}: {key} given twice")
        try:
            keys[key] = float(value)
        except ValueError:
            raise ValueError(f"prior spec {spec!r}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(keys[key]):
            raise ValueError(f"prior spec {spec!r}: {key} must be finite, got {value!r}")
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(f"prior spec {spec!r}: {name} needs {', '.join(f'{k}=...' for k in missing)}")
    try:
        return build(dim, **keys)
    except ValueError as err:
        raise ValueError(f"prior spec {spec!r}: {err}") from None


def canonical(spec: str) -> str:
    """The spec in a normal form (lower-case name, no spaces, options sorted): runs with equal
    canonical specs use the same prior."""
    name, _, rest = spec.strip().partition(":")
    parts = [p.strip().replace(" ", "") for p in rest.split(",")]
    options = sorted(f"{k}={float(v)!r}" for k, v in (p.split("=", 1) for p in parts[1:]))
    return ",".join([f"{name.strip().lower()}:{int(parts[0])}"] + options)
