"""One module per script: argparse, options, exit code. Each exposes main(argv) -> int."""
