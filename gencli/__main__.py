"""``python -m gencli`` (and ``accelerate launch -m gencli``)."""

from gencli.cli import main

if __name__ == "__main__":
    main()
