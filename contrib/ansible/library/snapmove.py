#!/usr/bin/python3
# -*- coding: utf-8 -*-
#
# snapmove.py: an Ansible module that drives snapmove on each host of a
# fleet.  It runs snapmove with --json on the managed host (Ansible copies the
# module there over SSH), reads its events and documents (docs/events.md) and
# returns them as data.  It decides nothing snapmove decides: it only checks
# first whether the goal is already met, so that a host already done reports
# "changed: false" and starts no job.  It never resumes or aborts a job on its
# own: a move that stopped half-way fails with the 'snapmove resume' command.
#
# No collection: put contrib/ansible/library in ANSIBLE_LIBRARY (or next to
# the playbook as library/) and use the module as "snapmove".

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: snapmove
short_description: Move the disks of running libvirt VMs, or rebalance storages, with snapmove
description:
  - Runs C(snapmove) with C(--json) on the managed host and returns what it did
    as structured data (the job, each disk's chain before and after, the exit
    status, the error).
  - "C(state: moved) moves the disks of one domain to a directory or a libvirt
    pool. Idempotent: when the live chain of every selected disk already has its
    active image in the destination, nothing runs and C(changed) is false. A
    disk still elsewhere is moved on its own (C(--disk)), so a host left half
    done converges."
  - "C(state: rebalanced) drains a storage or leaves each storage a free share.
    A C(rebalance --dry-run) runs first; an empty plan (the goal is already met)
    means C(changed) false and no rebalance."
  - Check mode runs only the dry run (C(move --dry-run) or C(rebalance --dry-run))
    and returns its plan.
  - A job that stopped after changing something (snapmove exit 1 or 5) fails the
    task with the job number and the C(snapmove resume JOB) command; the module
    never resumes or aborts by itself.
version_added: "1.0"
author: snapmove
requirements:
  - snapmove on the managed host, run as root (C(become)) for the system journal
  - virsh on the managed host, only for C(dest_pool)
options:
  state:
    description: What the host should look like afterwards.
    type: str
    choices: [moved, rebalanced]
    default: moved
  domain:
    description: The libvirt domain whose disks move (C(state=moved)).
    type: str
  dest:
    description: The destination directory (C(state=moved)); exclusive with C(dest_pool).
    type: path
  dest_pool:
    description: The destination libvirt storage pool (C(dir), C(fs) or C(netfs)).
    type: str
  disks:
    description:
      - Disk targets to move (C(vda)). Default every movable disk that
        C(snapmove chain) lists.
    type: list
    elements: str
  bandwidth:
    description: MiB/s for the copy, mirror and commit (moves), or shared by a rebalance's moves.
    type: int
  delete_source:
    description: Delete the source images no domain or image uses, after the move.
    type: bool
    default: false
  flatten:
    description: Put one image at the destination instead of the chain.
    type: bool
    default: false
  copy_shared:
    description: Copy backing images that other domains or images use too.
    type: bool
    default: false
  keep_overlay:
    description: Leave the domain on the destination overlay (no final commit).
    type: bool
    default: false
  quiesce:
    description: Freeze guest file systems for the snapshot (needs the guest agent).
    type: bool
    default: false
  verify:
    description: Re-read each copied chunk (false passes C(--no-verify)).
    type: bool
    default: true
  dest_format:
    description: Convert single-image disks to this format.
    type: str
    choices: [raw, qcow2]
  parallel:
    description: Copy up to this many disks at once.
    type: int
  offline:
    description: Move a shut-off domain (C(move --offline)).
    type: bool
    default: false
  storages:
    description: The storages (directories or pools) of a rebalance (C(state=rebalanced)).
    type: list
    elements: str
  drain:
    description: Empty this storage (one of C(storages)); exclusive with C(target_free).
    type: str
  target_free:
    description: Leave each storage at least this percentage free.
    type: int
  max_parallel:
    description: Run at most this many moves of a rebalance at once.
    type: int
  include:
    description: Rebalance only these domains.
    type: list
    elements: str
  exclude:
    description: Never move these domains in a rebalance.
    type: list
    elements: str
  include_offline:
    description: Let a rebalance move shut-off domains too.
    type: bool
    default: false
  stop_on_error:
    description: Stop a rebalance at the first move that fails.
    type: bool
    default: false
  uri:
    description: The libvirt URI (C(-c)); default snapmove's (C(qemu:///system)).
    type: str
  db:
    description: The journal (C(--db)); default snapmove's (C(/var/lib/snapmove/journal.db) for root).
    type: path
  hooks_dir:
    description: snapmove's C(--hooks-dir).
    type: path
  binary:
    description: The snapmove program, a path or a name looked up in PATH.
    type: str
    default: snapmove
notes:
  - Supports check mode.
  - Exit statuses of snapmove (docs/events.md) 0 done, 1 failed after changes,
    2 usage, 3 refused (nothing changed), 4 vetoed by a hook, 5 interrupted.
'''

EXAMPLES = r'''
- name: Move web1's disks to the fast storage
  snapmove:
    domain: web1
    dest: /srv/fast/images
    bandwidth: 200
  become: true

- name: Move only vdb into a libvirt pool, deleting the source images after
  snapmove:
    domain: db1
    dest_pool: fast
    disks: [vdb]
    delete_source: true
  become: true

- name: Drain /srv/old onto the other storages, two moves at a time
  snapmove:
    state: rebalanced
    storages: [/srv/old, /srv/ssd1, /srv/ssd2]
    drain: /srv/old
    max_parallel: 2
  become: true

- name: Leave 20% free on each storage (what would move, nothing done)
  snapmove:
    state: rebalanced
    storages: [/srv/ssd1, /srv/ssd2]
    target_free: 20
  check_mode: true
  register: plan
'''

RETURN = r'''
changed:
  description: A move or a rebalance ran (or would run, in check mode).
  returned: always
  type: bool
msg:
  description: What happened, one sentence.
  returned: always
  type: str
rc:
  description: snapmove's exit status of the command that decided the outcome (0 when nothing ran).
  returned: always
  type: int
cmd:
  description: The snapmove command line that ran last.
  returned: when a command ran
  type: list
status:
  description: The C(status) of snapmove's result (C(done), C(failed), C(refused), C(vetoed), C(interrupted)) or of the rebalance_result.
  returned: when snapmove wrote one
  type: str
error:
  description: snapmove's error message (the result's C(error), else its C(snapmove error) line on stderr).
  returned: on failure
  type: str
job:
  description: The job number of the move.
  returned: state=moved, when a job was made
  type: int
hint:
  description: The command that finishes a job that stopped half-way (C(snapmove resume JOB)).
  returned: when a job stopped after changing something
  type: str
disks:
  description: The result event's disks (target, state, before, after), or for a domain already moved, its disks as C(snapmove chain) lists them.
  returned: state=moved
  type: list
chains_before:
  description: For each disk target, the paths of its chain before, active image first.
  returned: state=moved
  type: dict
  sample: {"vda": ["/srv/slow/web1.qcow2", "/srv/slow/base.qcow2"]}
chains_after:
  description: For each disk target, the paths of its chain now, active image first.
  returned: state=moved
  type: dict
skipped_disks:
  description: Selected disks whose active image was already in the destination.
  returned: state=moved
  type: list
plan:
  description: The dry run's document (C(move --dry-run --json) or C(rebalance --dry-run --json)).
  returned: when a dry run ran
  type: dict
rebalance:
  description: The rebalance's number in the journal.
  returned: state=rebalanced, when a rebalance ran
  type: int
moves:
  description: Each move of the rebalance (seq, domain, disk, job, status), from its rebalance_result.
  returned: state=rebalanced, when a rebalance ran
  type: list
'''

import json
import os
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule

EXIT_MEANING = {
    0: 'done',
    1: 'failed after changing something',
    2: 'usage error',
    3: 'refused, nothing changed',
    4: 'vetoed by a hook',
    5: 'interrupted',
}


def json_lines(text):
    """The JSON objects of an event stream, one a line; other lines skipped."""
    out = []
    for line in (text or '').splitlines():
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def stderr_error(err):
    """The last 'snapmove: error: ...' line of stderr, else its last line."""
    lines = [l.strip() for l in (err or '').splitlines() if l.strip()]
    for line in reversed(lines):
        if line.startswith('snapmove: error: '):
            return line[len('snapmove: error: '):]
    return lines[-1] if lines else ''


def chain_paths(chain):
    return [i.get('path') for i in chain or []]


def same_dir(a, b):
    """Two directories are the same one (as snapmove compares them)."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return sa.st_dev == sb.st_dev and sa.st_ino == sb.st_ino


class Snapmove(object):
    def __init__(self, module):
        self.m = module
        self.p = module.params
        self.result = {'changed': False, 'rc': 0}

    def base(self):
        b = self.p['binary']
        if os.sep not in b:
            found = self.m.get_bin_path(b)
            if not found:
                self.fail("cannot find the snapmove program '%s' in PATH; install it "
                          "or give its path as 'binary'" % b)
            b = found
        argv = [b]
        if self.p['uri']:
            argv += ['-c', self.p['uri']]
        if self.p['db']:
            argv += ['--db', self.p['db']]
        if self.p['hooks_dir']:
            argv += ['--hooks-dir', self.p['hooks_dir']]
        return argv + ['--json']

    def run(self, args):
        argv = self.base() + args
        self.result['cmd'] = argv
        rc, out, err = self.m.run_command(argv, environ_update={'LC_ALL': 'C'})
        return rc, out, err

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.result['msg'] = msg
        self.m.fail_json(**self.result)

    def fail_command(self, what, rc, out, err, result=None):
        """snapmove refused or failed: say why, with its own words."""
        error = (result or {}).get('error') or stderr_error(err)
        self.result['rc'] = rc
        self.result['error'] = error
        if result and result.get('status'):
            self.result['status'] = result['status']
        self.result['stderr'] = err
        meaning = EXIT_MEANING.get(rc, 'exit status %d' % rc)
        self.fail('snapmove %s: %s (exit %d): %s' % (what, meaning, rc, error))

    def document(self, what, args):
        rc, out, err = self.run(args)
        if rc != 0:
            self.fail_command(what, rc, out, err, first_result(json_lines(out)))
        try:
            return json.loads(out)
        except ValueError:
            self.fail("snapmove %s printed no JSON document: %s" % (what, out[:200]))

    # -- state: moved --------------------------------------------------

    def dest_dir(self):
        if self.p['dest']:
            return self.p['dest']
        virsh = self.m.get_bin_path('virsh', required=True)
        argv = [virsh]
        if self.p['uri']:
            argv += ['-c', self.p['uri']]
        rc, out, err = self.m.run_command(argv + ['pool-dumpxml', self.p['dest_pool']],
                                          environ_update={'LC_ALL': 'C'})
        if rc != 0:
            self.fail("cannot read the storage pool '%s': %s" % (self.p['dest_pool'],
                                                                  err.strip()))
        path = ET.fromstring(out).findtext('./target/path')
        if not path:
            self.fail("the storage pool '%s' has no target path; snapmove moves into "
                      "dir, fs and netfs pools" % self.p['dest_pool'])
        return path

    def move_args(self, disks):
        p = self.p
        args = ['move', p['domain']]
        args += ['--dest', p['dest']] if p['dest'] else ['--dest-pool', p['dest_pool']]
        for d in disks:
            args += ['--disk', d]
        if p['bandwidth'] is not None:
            args += ['--bandwidth', str(p['bandwidth'])]
        if p['dest_format']:
            args += ['--dest-format', p['dest_format']]
        if p['parallel'] is not None:
            args += ['--parallel', str(p['parallel'])]
        for flag, opt in (('delete_source', '--delete-source'), ('flatten', '--flatten'),
                          ('copy_shared', '--copy-shared'), ('keep_overlay', '--keep-overlay'),
                          ('quiesce', '--quiesce'), ('offline', '--offline')):
            if p[flag]:
                args.append(opt)
        if not p['verify']:
            args.append('--no-verify')
        return args

    def moved(self):
        p = self.p
        dest = self.dest_dir()
        chain = self.document('chain', ['chain', p['domain']])
        by_target = dict((d.get('target'), d) for d in chain.get('disks', []))
        if p['disks']:
            selected = list(p['disks'])
        else:
            selected = [t for t, d in by_target.items() if d.get('movable')]
        pending, skipped = [], []
        for t in selected:
            d = by_target.get(t)
            top = chain_paths(d.get('chain'))[:1] if d else []
            if top and top[0] and same_dir(os.path.dirname(top[0]), dest):
                skipped.append(t)
            else:
                pending.append(t)
        self.result['skipped_disks'] = skipped
        now = dict((t, chain_paths(by_target[t].get('chain'))) for t in skipped)
        if selected and not pending:
            self.result.update(disks=[by_target[t] for t in skipped],
                               chains_before=now, chains_after=now,
                               msg="every disk of '%s' (%s) is already in '%s'"
                               % (p['domain'], ', '.join(skipped), dest))
            self.m.exit_json(**self.result)
        # No disk selected (none movable): let snapmove say why.
        args = self.move_args(pending if p['disks'] or skipped else [])
        if self.m.check_mode:
            plan = self.document('move --dry-run', args + ['--dry-run'])
            self.result.update(changed=True, plan=plan,
                               chains_before=dict((d['target'], chain_paths(d['before']))
                                                  for d in plan.get('disks', [])),
                               chains_after=dict((d['target'], chain_paths(d['after']))
                                                 for d in plan.get('disks', [])),
                               msg="would move %s of '%s' to '%s'"
                               % (', '.join(d['target'] for d in plan.get('disks', [])),
                                  p['domain'], dest))
            self.m.exit_json(**self.result)
        rc, out, err = self.run(args)
        res = first_result(json_lines(out))
        disks = (res or {}).get('disks', [])
        self.result.update(
            rc=rc, job=(res or {}).get('job'), disks=disks,
            status=(res or {}).get('status'),
            chains_before=dict((d['target'], chain_paths(d.get('before'))) for d in disks),
            chains_after=dict((d['target'], chain_paths(d.get('after'))) for d in disks))
        if self.result['job'] is None:
            del self.result['job']
        if rc == 0:
            self.result.update(changed=True, msg="moved %s of '%s' to '%s' (job %s)"
                               % (', '.join(d['target'] for d in disks), p['domain'],
                                  dest, self.result.get('job')))
            self.m.exit_json(**self.result)
        # Vetoed at before_move changes nothing: every disk still planned.
        changed = rc in (1, 5) or (rc == 4 and any(d.get('state') != 'planned'
                                                    for d in disks))
        self.result['changed'] = changed
        if changed and self.result.get('job') is not None:
            self.result['hint'] = 'snapmove resume %d' % self.result['job']
        error = (res or {}).get('error') or stderr_error(err)
        if self.result.get('hint'):
            error += ("; job %d is unfinished: run '%s' to finish it, or 'snapmove abort %d' "
                      "to undo it" % (self.result['job'], self.result['hint'], self.result['job']))
        self.fail_command('move', rc, out, err, dict(res or {}, error=error))

    # -- state: rebalanced ---------------------------------------------

    def rebalance_args(self):
        p = self.p
        args = ['rebalance']
        for s in p['storages']:
            args += ['--storage', s]
        if p['drain']:
            args += ['--drain', p['drain']]
        else:
            args += ['--target-free', str(p['target_free'])]
        if p['max_parallel'] is not None:
            args += ['--max-parallel', str(p['max_parallel'])]
        if p['bandwidth'] is not None:
            args += ['--bandwidth', str(p['bandwidth'])]
        for d in p['include'] or []:
            args += ['--include', d]
        for d in p['exclude'] or []:
            args += ['--exclude', d]
        if p['include_offline']:
            args.append('--include-offline')
        if p['stop_on_error']:
            args.append('--stop-on-error')
        return args

    def rebalanced(self):
        args = self.rebalance_args()
        plan = self.document('rebalance --dry-run', args + ['--dry-run'])
        self.result['plan'] = plan
        moves = plan.get('moves') or []
        if not moves:
            self.result['msg'] = 'nothing to move: the goal is already met'
            self.m.exit_json(**self.result)
        if self.m.check_mode:
            self.result.update(changed=True, msg='would run %d moves, %d bytes'
                               % (len(moves), plan.get('bytes', 0)))
            self.m.exit_json(**self.result)
        rc, out, err = self.run(args)
        events = json_lines(out)
        rr = [e for e in events if e.get('event') == 'rebalance_result']
        rr = rr[-1] if rr else {}
        self.result.update(rc=rc, rebalance=rr.get('rebalance'), moves=rr.get('moves', []),
                           status=rr.get('status'))
        done = [m for m in self.result['moves'] if m.get('status') == 'done']
        if rc == 0:
            self.result.update(changed=True, msg='rebalance %s: %d moves done'
                               % (rr.get('rebalance'), len(done)))
            self.m.exit_json(**self.result)
        # A rebalance that planned has a number: it ran, something may have moved.
        self.result['changed'] = bool(rr) and rc in (1, 5)
        errors = ['job %s (%s %s): %s' % (e.get('job'), e.get('domain'),
                                          ','.join(d.get('target', '') for d in e.get('disks', [])),
                                          e.get('error'))
                  for e in events if e.get('event') == 'result' and e.get('status') != 'done']
        if self.result['changed']:
            self.result['hint'] = 'snapmove rebalance --resume'
            error = "%d of %d moves did not finish (%s); run 'snapmove rebalance --resume'" % (
                len(self.result['moves']) - len(done), len(self.result['moves']),
                '; '.join(errors) or stderr_error(err))
            self.fail_command('rebalance', rc, out, err, {'error': error,
                                                         'status': rr.get('status')})
        self.fail_command('rebalance', rc, out, err, first_result(events))


def first_result(events):
    """The command's result: the first result event (docs/events.md)."""
    for e in events:
        if e.get('event') == 'result':
            return e
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='moved', choices=['moved', 'rebalanced']),
            domain=dict(type='str'),
            dest=dict(type='path'),
            dest_pool=dict(type='str'),
            disks=dict(type='list', elements='str'),
            bandwidth=dict(type='int'),
            delete_source=dict(type='bool', default=False),
            flatten=dict(type='bool', default=False),
            copy_shared=dict(type='bool', default=False),
            keep_overlay=dict(type='bool', default=False),
            quiesce=dict(type='bool', default=False),
            verify=dict(type='bool', default=True),
            dest_format=dict(type='str', choices=['raw', 'qcow2']),
            parallel=dict(type='int'),
            offline=dict(type='bool', default=False),
            storages=dict(type='list', elements='str'),
            drain=dict(type='str'),
            target_free=dict(type='int'),
            max_parallel=dict(type='int'),
            include=dict(type='list', elements='str'),
            exclude=dict(type='list', elements='str'),
            include_offline=dict(type='bool', default=False),
            stop_on_error=dict(type='bool', default=False),
            uri=dict(type='str'),
            db=dict(type='path'),
            hooks_dir=dict(type='path'),
            binary=dict(type='str', default='snapmove'),
        ),
        required_if=[
            ('state', 'moved', ('domain',)),
            ('state', 'moved', ('dest', 'dest_pool'), True),
            ('state', 'rebalanced', ('storages',)),
            ('state', 'rebalanced', ('drain', 'target_free'), True),
        ],
        mutually_exclusive=[('dest', 'dest_pool'), ('drain', 'target_free')],
        supports_check_mode=True,
    )
    sm = Snapmove(module)
    if module.params['state'] == 'moved':
        sm.moved()
    else:
        sm.rebalanced()


if __name__ == '__main__':
    main()
