from elt_platform.warm.entry import main

main()
