/** Teardown steps, run last-in first-out exactly once: at the end, on error, or on Ctrl-C. */
export class Cleanup {
  private readonly steps: Array<{ name: string; run: () => Promise<void> }> = [];
  private running: Promise<void> | null = null;

  add(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          console.error(`bench: cleanup: ${step.name}`);
          await step.run();
        } catch (err) {
          console.error(`bench: cleanup "${step.name}" failed:`, err);
        }
      }
    })();
    return this.running;
  }
}
