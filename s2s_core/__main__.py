from .cli import main

main(prog_name="s2s")
