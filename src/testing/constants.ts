/** What the test backdoor prints once its shell reads commands: the driver waits for it, the testing module prints it. */
export const BACKDOOR_READY = 'Spawning backdoor root shell...';
