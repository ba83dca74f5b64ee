/**
 * Test file order: vitest's (failed first, then longest by the last run's times, then largest)
 * with the VM test driver always first. It is by far the longest file; started last it would run
 * alone at the end with the second worker idle, however the cache says.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const FIRST = /\/test\/vm\/driver\.test\.ts$/;

export default class Sequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((f) => FIRST.test(f.moduleId)), ...sorted.filter((f) => !FIRST.test(f.moduleId))];
  }
}
