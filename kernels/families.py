"""Family codes of the radial realism index (MATH.md 1.1), shared by every backend.

A radial prior's realism index is the survival function of its squared whitened radius
s = |W (z - mu)|^2. ``p0`` and ``p1`` are the family's own parameters:

=============  =========  =======  ==========================================================
code           p0         p1       ri(z)
=============  =========  =======  ==========================================================
CHI2           -          -        Q(D/2, s/2): the chi2(D) survival function of s
CHI2_ERF       -          -        1/2 + 1/2 erf(sqrt(D - 1/2) - sqrt(s)) (paper eq. 1, approx.)
GAMMA_RADIUS   shape k    scale    Q(k, sqrt(s)/theta): Kilcher et al.'s prior
F_RATIO        df nu      -        F(D, nu) survival function of s/D = I_{nu/(nu+s)}(nu/2, D/2)
BALL           radius     -        1 if s <= radius^2 else 0
=============  =========  =======  ==========================================================
"""
CHI2 = 0
CHI2_ERF = 1
GAMMA_RADIUS = 2
F_RATIO = 3
BALL = 4

NAMES = {CHI2: "chi2", CHI2_ERF: "chi2-erf", GAMMA_RADIUS: "gamma-radius", F_RATIO: "f-ratio", BALL: "ball"}

#: below this, s = |y|^2 has lost its digits to underflow (|y| < 1e-145): the kernels take
#: the gamma radius's index from r by scaling there (radial.py: from_radius)
TINY_S = 1e-290

