// entry point
const x = 1;

/* block
   comment */
function f() {
  return x; // trailing
}
