/**
 * The child side of a benchmark's forked process (controller-process.ts,
 * gateway-process.ts): reads ATOLL_BENCH_KUBECONFIG and the ATOLL_* settings,
 * starts the component, reports what it started over IPC, stops on a `stop`
 * message, and never outlives the benchmark.
 */
export function serveBenchProcess(
  name: string,
  start: (
    kubeconfig: string,
    settings: Record<string, string>,
  ) => Promise<{ started: Record<string, unknown>; stop(): Promise<void> }>,
): void {
  const run = async () => {
    const kubeconfig = process.env.ATOLL_BENCH_KUBECONFIG;
    if (!kubeconfig || !process.send)
      throw new Error(`${name}-process is forked by a benchmark with ATOLL_BENCH_KUBECONFIG set`);
    const settings = Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] =>
          e[0].startsWith('ATOLL_') && e[0] !== 'ATOLL_BENCH_KUBECONFIG' && e[1] !== undefined,
      ),
    );
    const component = await start(kubeconfig, settings);
    process.on('message', (msg) => {
      if (msg !== 'stop') return;
      const timer = setTimeout(() => process.exit(1), 15_000);
      timer.unref();
      void component.stop().finally(() => process.exit(0));
    });
    // The bench went away (crashed or killed): do not outlive it.
    process.on('disconnect', () => {
      process.stderr.write(`${name} process: the benchmark went away, exiting\n`);
      process.exit(1);
    });
    process.send(component.started);
  };
  run().catch((err: unknown) => {
    process.stderr.write(`${name} process failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
