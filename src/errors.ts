// Errors caused by what the user gave us (a flag, a file, a checkpoint, a data set). The CLI prints their message
// on one line and exits with code 2; any other error is a bug and exits with code 1 and a stack trace.
export class InputError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = new.target.name;
  }
}
