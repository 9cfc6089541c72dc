//! kvd → etcd: a snapshot saved from kvd with `etcdctl snapshot save` and restored by
//! `etcdctl snapshot restore` serves in real etcd what kvd served.

use crate::harness::{etcd_bin, header_revision, kvd_bin, new_temp_dir, Member, Server};
use crate::ids::assert_membership;
use crate::observe::{assert_expected, observe, write_history, LAST, ROOT};
use crate::snapfile::{restore, save, Restorer, TOKEN};

#[test]
fn kvd_snapshot_serves_the_same_data_in_etcd() {
    require_tools!();
    let kvd = Server::start(&kvd_bin());
    let h = write_history(&kvd, true);
    let want = observe(&kvd, &h);
    assert_expected(&want, &h);
    let files = new_temp_dir();
    let snap = files.path().join("kvd.db");
    save(&kvd, ROOT, &snap);
    drop(kvd);

    let member = Member::new("etcd-restored");
    let dir = new_temp_dir();
    let data = dir.path().join("data");
    restore(
        Restorer::Etcdctl,
        &snap,
        &data,
        &member,
        &member.cluster_entry(),
        &[],
    )
    .ok();
    let etcd = Server::start_prepared(dir, &etcd_bin(), member.clone(), TOKEN, ROOT);
    let got = observe(&etcd, &h);
    want.assert_same(&got, "kvd snapshot restored by etcdctl, served by etcd");
    assert_membership(&etcd, ROOT, &[member], TOKEN);
    let put = etcd
        .ctl()
        .user(ROOT)
        .args(&["put", "z", "1", "-w", "json"])
        .run()
        .ok();
    assert_eq!(header_revision(&put.json()), LAST + 1);
}
