"""Command line: each command module parses its arguments and calls one library function."""
