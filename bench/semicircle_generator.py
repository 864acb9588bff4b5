"""The semicircle demo model's generator as a generator spec for interpolate_many and the CLI:
``bench/semicircle_generator.py:generator()``."""


def generator():
    import fastgeo

    return fastgeo.models.load("semicircle").generator
