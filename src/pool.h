/* pool.h: libvirt storage pools as destinations (--dest-pool) and keeping
 * every pool a move touched up to date ('virsh vol-list' right afterwards).
 * Only pools whose volumes are files in one directory qualify: dir, fs, netfs.
 * A logical (LVM) pool names the volume group of the lvm provisioner.
 */
#ifndef SM_POOL_H
#define SM_POOL_H

#include <libvirt/libvirt.h>
#include <stddef.h>

/* The target directory of pool name; refuses other pool types and inactive
 * pools with what to do. */
int sm_pool_dest_dir(virConnectPtr conn, const char *name, char **dir);
/* The volume group of logical pool name (its <source><name>), whose
 * devices the lvm provisioner makes; refuses other pool types. */
int sm_pool_logical_vg(virConnectPtr conn, const char *name, char **vg);
/* Refresh every active pool whose target directory is one of dirs; -1 (with
 * the error of the last failure) when one could not be refreshed. */
int sm_pool_refresh_dirs(virConnectPtr conn, const char *const *dirs, size_t n);

#endif
