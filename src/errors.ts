// Errors caused by what the user gave us (a flag, a file, a checkpoint, a data set). The CLI prints their message
// on one line and exits with code 2; any other error is a bug and exits with code 1 and a stack trace.
export class InputError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = new.target.name;
  }
}

/** A long loop stopped at a safe point because the user asked (Ctrl-C, SIGTERM); the CLI exits with 130. */
export class Interrupted extends Error {
  constructor(what = "interrupted") {
    super(what);
    this.name = "Interrupted";
  }
}
