from core.cli.base import main

main()
