"""``fastgeo info``: versions, backends and devices of this machine."""


def add_parser(subparsers):
    parser = subparsers.add_parser("info", help="print versions, backends and devices (fastgeo.info())")
    parser.set_defaults(run=run)
    return parser


def run(args):
    import fastgeo

    print(fastgeo.info())
    return 0
