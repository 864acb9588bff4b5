"""fastgeo.special: log survival functions of the chi-square, Gamma and F distributions and
the logs of the regularised upper incomplete gamma and beta functions, as ufunc-like
functions (scipy.special style: they broadcast, keep the arguments' array type, dtype and
device, and differentiate in x under torch autograd).

=====================================  ===========================================  =========
function                               value                                        kernel
=====================================  ===========================================  =========
chi2_logsf(x, df)                      log P(chi2_df > x) = log Q(df/2, x/2)        gamma_sf
chi2_sf(x, df)                         exp(chi2_logsf(x, df))                       gamma_sf
gamma_logsf(x, a, scale=1)             log Q(a, x/scale)                            gamma_sf
log_gammaincc(a, x)                    log Q(a, x) (scipy.special.gammaincc)        gamma_sf
f_logsf(x, dfn, dfd)                   log I_w(dfd/2, dfn/2), w = dfd/(dfd+dfn x)  f_sf
log_betainc_upper(a, b, x)             log(1 - I_x(a, b)) (scipy's betaincc);       beta_upper
  (alias log_betaincc)                 = log I_{1-x}(b, a)
=====================================  ===========================================  =========

dtype table (every function): float32 arguments -> float32 result (computed in float64);
float64, or any mix with float64 -> float64; Python/numpy scalars do not set the dtype.

The kernels (fastgeo/kernels/cpu_special.py, cuda_special.py) call the scalar functions of
fastgeo/kernels/special_sf.py, built on the ones the realism index uses (special_gamma,
special_beta); they compile on the first call, not on import.
"""
from ._functions import (chi2_logsf, chi2_sf, f_logsf, gamma_logsf, log_betainc_upper, log_betaincc,
                         log_gammaincc)

__all__ = ["chi2_logsf", "chi2_sf", "gamma_logsf", "log_gammaincc", "f_logsf", "log_betainc_upper",
           "log_betaincc"]
