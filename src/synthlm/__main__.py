from synthlm.cli import main

main()
