/** What the test backdoor prints once its shell reads commands: the driver waits for it, the testing module prints it. */
export const BACKDOOR_READY = 'Spawning backdoor root shell...';

/**
 * The name of the test shell's virtio port (the guest finds its device by it in
 * /sys/class/virtio-ports). A port, not a virtio console: QEMU drops a console's output when the
 * host reads it slower than the guest writes (a command's large output, a busy host), where a
 * port makes the guest's write wait.
 */
export const SHELL_PORT = 'org.cairn.shell';

/** QEMU's id of the character device behind SHELL_PORT (the host's unix socket), as QMP's query-chardev names it. */
export const SHELL_CHARDEV = 'shell';

/** Made by the testing module's unit once the guest reached multi-user.target (in /run: gone at the next boot). */
export const BOOTED_FLAG = '/run/.cairn-test-booted';
