//! A member replaced under load: removed (`member remove`, then its process killed and its
//! data dir abandoned), and a fresh member with a new name and an empty data dir added
//! (`member add`, started with `--initial-cluster-state existing`). The clients and
//! watchers pinned to the removed member move to its replacement.

use std::time::Duration;

use super::Ctx;

/// Replaces a follower, then the leader, ... while there is time.
pub async fn replace(ctx: &mut Ctx<'_>) {
    let mut round = 0;
    while ctx.left() > Duration::from_secs(8) {
        let d = ctx.ms(1000, 2000);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        // a follower first: removing the leader also moves leadership
        let (v, role) = ctx.victim(round + 1).await;
        let leader = ctx.leader().await;
        let via = if v == leader {
            ctx.members()
                .into_iter()
                .find(|&i| i != v)
                .expect("another member")
        } else {
            leader
        };
        ctx.cluster.remove_member(v, via).await;
        ctx.removed.insert(v);
        ctx.fault(format!("member remove {} ({role})", ctx.name(v)));
        let name = format!("m{}", ctx.cluster.nodes.len() + 1);
        let via = ctx.leader().await;
        let added = ctx.cluster.add_member(&name, false, via).await;
        for (slot, node) in ctx.slot_nodes.clone().into_iter().enumerate() {
            if node == v {
                ctx.slot_nodes[slot] = added;
                ctx.slots.set(slot, ctx.target(added));
            }
        }
        ctx.fault(format!(
            "member add {name} (empty data dir) ready; it takes {}'s clients",
            ctx.name(v)
        ));
        round += 1;
    }
}
