import { Deadline, messageSeconds, NOTICES } from './deadline';

describe('Deadline', () => {
  it('prints whole seconds as max(1, round(ms / 1000))', () => {
    expect(messageSeconds(4_100)).toBe(4);
    expect(messageSeconds(5_000)).toBe(5);
    expect(messageSeconds(2_000)).toBe(2);
    expect(messageSeconds(1_500)).toBe(2);
    expect(messageSeconds(300)).toBe(1);
  });

  it('names the budget in the interrupt notice', () => {
    const deadline = new Deadline(10_000 + 4_100, 4_100);
    expect(NOTICES.interrupted(deadline.seconds)).toBe(
      'eval cell timed out after 4s; kernel interrupted but remains running. ' +
        'Reset the kernel via { reset: true } if state appears corrupted.',
    );
  });

  it('counts down to zero and then reports expiry', () => {
    const deadline = new Deadline(1_000, 1_000);
    expect(deadline.remaining(400)).toBe(600);
    expect(deadline.expired(999)).toBe(false);
    expect(deadline.expired(1_000)).toBe(true);
    expect(deadline.remaining(5_000)).toBe(0);
  });

  it('gives a kernel start step at most its cap, and never more than what is left', () => {
    const deadline = new Deadline(30_000, 30_000);
    expect(deadline.stepBudget(10_000, 0)).toBe(10_000);
    expect(deadline.stepBudget(10_000, 25_000)).toBe(5_000);
    expect(deadline.stepBudget(10_000, 31_000)).toBe(0);
  });
});
