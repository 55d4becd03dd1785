from elt_platform.cli import main

main()
