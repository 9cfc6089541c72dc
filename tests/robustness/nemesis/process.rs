//! Process faults: SIGKILL and restart, SIGSTOP for 1-4 s then SIGCONT, rolling restarts
//! with SIGTERM, alternating between the leader and a follower.

use std::time::Duration;

use super::Ctx;

/// SIGKILL the leader twice, then a follower, ...; each is restarted a second later.
pub async fn kill(ctx: &mut Ctx<'_>) {
    let mut round = 0;
    while ctx.left() > Duration::from_secs(4) {
        let d = ctx.ms(1000, 2000);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        // victim() takes the leader on even rounds
        let (v, role) = ctx.victim(if round % 3 == 2 { 1 } else { 0 }).await;
        round += 1;
        ctx.cluster.nodes[v].kill9();
        ctx.fault(format!("SIGKILL {} ({role})", ctx.name(v)));
        ctx.sleep(Duration::from_secs(1)).await;
        ctx.cluster.nodes[v].restart().await;
        ctx.fault(format!("{} restarted and ready", ctx.name(v)));
    }
}

/// SIGSTOP the leader, then a follower, ... for 1-4 s each, then SIGCONT.
pub async fn pause(ctx: &mut Ctx<'_>) {
    let mut round = 0;
    while ctx.left() > Duration::from_secs(6) {
        let d = ctx.ms(1000, 2000);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        let (v, role) = ctx.victim(round).await;
        round += 1;
        let frozen = ctx.ms(1000, 4000);
        ctx.cluster.nodes[v].pause();
        ctx.paused.insert(v);
        ctx.fault(format!("SIGSTOP {} ({role}) for {frozen:.1?}", ctx.name(v)));
        ctx.sleep(frozen).await;
        ctx.cluster.nodes[v].resume();
        ctx.paused.remove(&v);
    }
}

/// SIGTERM each member in turn (the leader among them), wait for it to exit, restart it.
pub async fn rolling_restart(ctx: &mut Ctx<'_>) {
    while ctx.left() > Duration::from_secs(6) {
        for i in ctx.members() {
            if ctx.left() < Duration::from_secs(4) {
                break;
            }
            ctx.check_exits().await;
            let leader = ctx.leader().await;
            let role = if leader == i { "leader" } else { "follower" };
            let st = ctx.cluster.nodes[i].terminate(Duration::from_secs(10));
            if st.is_some_and(|s| std::os::unix::process::ExitStatusExt::signal(&s) == Some(9)) {
                ctx.problems.push(format!(
                    "{} did not exit within 10 s of SIGTERM (killed)",
                    ctx.name(i)
                ));
            }
            ctx.fault(format!(
                "SIGTERM {} ({role}): exited with {}",
                ctx.name(i),
                st.map_or_else(|| "?".to_string(), |s| s.to_string())
            ));
            ctx.cluster.nodes[i].restart().await;
            let d = ctx.ms(500, 1500);
            ctx.sleep(d).await;
        }
    }
}
