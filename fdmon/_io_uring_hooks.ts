// Switches for tests and benchmarks of the io_uring fd monitor, per
// isolate. Nothing here is public API.
//
// - setupErrno: when set, every ring setup of this isolate fails with this
//   errno before the system call is made, as on a kernel with io_uring
//   turned off (EPERM: sysctl or seccomp; ENOSYS: too old; EMFILE: no fds
//   left). The probe of fdmonIoUring.supported() is cached, so a probe that
//   already succeeded stays true and only new rings fail.
// - extArg: false makes new monitors time their waits with an
//   IORING_OP_TIMEOUT SQE even where IORING_FEAT_EXT_ARG is there.
export const ioUringHooks: { setupErrno: number | null; extArg: boolean } = {
  setupErrno: null,
  extArg: true,
};
