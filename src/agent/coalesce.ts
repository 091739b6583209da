/**
 * Runs a rebuild once per burst of changes: `invalidate()` starts it, or, while one is running,
 * asks for one more after it; `settled()` resolves once a rebuild has covered every change so far.
 */
export class Coalescer {
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly work: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  invalidate(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.work()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.invalidate();
        }
      });
  }

  async settled(): Promise<void> {
    while (this.running) await this.running;
  }
}
