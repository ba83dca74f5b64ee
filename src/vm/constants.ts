/**
 * Labels of the two disks of `cairn vm`: the machine's state (its root) and the store, read-only.
 * The disks are made with them here and the VM module mounts them by them.
 */
export const VM_ROOT_LABEL = 'cairn-vm-root';
export const VM_STORE_LABEL = 'cairn-store';
