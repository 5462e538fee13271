from studyshelf.cli import main

main()
