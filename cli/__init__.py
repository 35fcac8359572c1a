"""The command line of main.py: one module per group of commands, sharing the argument parser and table output."""
