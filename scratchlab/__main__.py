from scratchlab.cli.main import main

main()
