"""Data package: the leaderboard files bench reads at run time (metric schema, published numbers, table specs,
expected values for ``bench check``; formats in README.md here).

It is a package (and not a plain folder beside ``bench/``) so that a wheel installs these files with bench and
``importlib.resources.files("leaderboards")`` finds them in a non-editable install, while the folder stays at the
top of the repository where the product layout puts it. No code lives here.
"""
