using Gateway.Fuzz;

// Entry point of the fuzzing harness. Usage (see fuzz/README.md):
//   Gateway.Fuzz <target>                              afl-fuzz mode (SharpFuzz), input on stdin
//   Gateway.Fuzz <target> --replay <file|dir>...        run inputs without AFL; exit 1 on any contract violation
//   Gateway.Fuzz seed <proto/vectors> <fuzz/seeds>      (re)write the seed corpus
//   Gateway.Fuzz list                                   print the target names
return Cli.Run(args);
