from structx._cli import main

main()
