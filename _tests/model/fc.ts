// fast-check, pinned; the one place the test suite names the npm package
// (deno.json has no import map entry for it).
export { default } from "npm:fast-check@3.23.2";
