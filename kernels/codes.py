"""What a query kernel computes: the integer codes the backends pass as ``what``, defined once.

The kernels compare ``what`` with these module-level integers (Numba freezes them as
compile-time constants, on the CPU and in CUDA kernels alike); the backends turn the public
names into codes with the ``*_WHAT`` tables. Plain Python, so importing it compiles nothing.
The radial families' own codes are in :mod:`.families`.
"""
#: the radial realism index (kernels/cpu_radial.py, kernels/cuda_radial.py)
WHAT_LOG_RI, WHAT_RI, WHAT_LOG_DENSITY = 0, 1, 2
RADIAL_WHAT = {"log_ri": WHAT_LOG_RI, "ri": WHAT_RI, "log_density": WHAT_LOG_DENSITY}

#: the KDE estimator: G, log G, g, log g of the log-density's distribution (kernels/kde.py,
#: which relies on this order: the two CDF codes below the two PDF ones)
CDF, LOG_CDF, PDF, LOG_PDF = 0, 1, 2, 3
KDE_WHAT = {"cdf": CDF, "log_cdf": LOG_CDF, "pdf": PDF, "log_pdf": LOG_PDF}
