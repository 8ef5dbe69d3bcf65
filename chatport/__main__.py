from chatport.cli import main

main()
