"""The kernels' ``what`` codes are defined once (kernels/codes.py) and imported everywhere else."""
from fastgeo import kde as kde_api
from fastgeo.backends import base
from fastgeo.backends import cpu as cpu_backend
from fastgeo.backends import cuda as cuda_backend
from fastgeo.kernels import codes
from fastgeo.kernels import kde as kde_kernels


def test_backends_use_the_kernels_tables():
    for backend in (cpu_backend, cuda_backend):
        assert backend._WHAT is codes.RADIAL_WHAT
        assert backend._KDE_WHAT is codes.KDE_WHAT


def test_tables_cover_the_public_names():
    assert tuple(codes.RADIAL_WHAT) == base.WHATS
    assert tuple(codes.KDE_WHAT) == kde_api.WHATS


def test_kde_kernel_reads_the_same_codes():
    assert (kde_kernels.CDF, kde_kernels.LOG_CDF, kde_kernels.PDF) == (codes.CDF, codes.LOG_CDF, codes.PDF)
    # the query kernel tells the two CDF codes from the two PDF ones by order
    assert max(codes.CDF, codes.LOG_CDF) < min(codes.PDF, codes.LOG_PDF)
