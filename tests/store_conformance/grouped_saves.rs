//! Saves of many runs arriving at once. The PostgreSQL store writes them
//! together in one transaction (group commit, `grouped_saves`); each must
//! still be answered exactly as it would be alone, by both back-ends, and
//! what is stored must read back as after saves one by one.

use super::*;
use hotswap_actors::domain::RunOwner;

const RUNS: usize = 24;

fn change(run: usize, n: usize) -> NodeChange {
    NodeChange {
        node_id: Uuid::from_u128(((run as u128) << 32) + n as u128 + 1),
        hostname: format!("group-{run}-node-{n}"),
        environment: Environment::Development,
        before: if n.is_multiple_of(2) { ModuleSlots::default() } else { slots(&format!("0.{n}.0")) },
    }
}

/// The next revision of `r`; runs whose index is a multiple of three also
/// change `adds` more nodes.
fn next(r: &RunRecord, i: usize, round: u32, adds: usize) -> RunRecord {
    let mut n = r.clone();
    n.revision += 1;
    n.message = format!("round {round}");
    if i.is_multiple_of(3) {
        let from = n.changes.len();
        Arc::make_mut(&mut n.changes).extend((from..from + adds).map(|c| change(i, c)));
    }
    n
}

async fn saves_arriving_together_are_each_answered_as_alone(store: SharedStore) {
    let t = tenant();
    let owner = RunOwner { instance: "instance-a".into(), epoch: 1 };
    let mut runs = Vec::new();
    let mut events: Vec<Vec<RunEvent>> = Vec::new();
    for i in 0..RUNS {
        let mut r = run(t, &format!("kmod-group-{i}"), at(i as i64, 0), RunStatus::Running);
        r.changes = Arc::new(Vec::new());
        r.owner = Some(owner.clone());
        let created = vec![event(&r, "Created", 0)];
        store.create_run(&r, &created).await.unwrap();
        runs.push(r);
        events.push(created);
    }

    // Round 1: every run saved at once, each with two events; some add changes.
    let round: Vec<(RunRecord, Vec<RunEvent>)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = next(r, i, 1, 5);
            let evs = vec![event(&n, "WaveLoaded", 1), event(&n, "WaveChecked", 2)];
            (n, evs)
        })
        .collect();
    let answers = futures::future::join_all(round.iter().map(|(r, e)| store.save_run(r, e))).await;
    for (i, answer) in answers.into_iter().enumerate() {
        answer.unwrap_or_else(|e| panic!("run {i}: {e}"));
    }
    for (i, (saved, evs)) in round.into_iter().enumerate() {
        events[i].extend(evs);
        runs[i] = saved;
    }

    // Round 2: more changes appended after those stored, with refusals mixed
    // in: an older revision, a writer whose lease epoch is gone, a run not
    // stored, and one run saved twice (the second save after the first).
    let mut round: Vec<(RunRecord, Vec<RunEvent>)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = next(r, i, 2, 3);
            let evs = vec![event(&n, "WaveCompleted", 3)];
            (n, evs)
        })
        .collect();
    let stale = 1;
    round[stale].0.revision = runs[stale].revision;
    let fenced = 2;
    round[fenced].0.owner = Some(RunOwner { instance: "instance-b".into(), epoch: 2 });
    let twice = 4;
    let again = next(&round[twice].0, twice, 3, 2);
    round.push((again.clone(), vec![event(&again, "Succeeded", 4)]));
    let unknown = run(t, "kmod-group-unknown", at(99, 0), RunStatus::Running);
    round.push((unknown, vec![event(&runs[0], "Lost", 5)]));

    let answers = futures::future::join_all(round.iter().map(|(r, e)| store.save_run(r, e))).await;
    for (i, answer) in answers.iter().enumerate() {
        match (i, answer) {
            (i, Err(StoreError::Stale(m))) if i == stale => {
                assert!(m.contains(&runs[i].execution_id.to_string()), "{m}")
            }
            (i, Err(StoreError::Fenced(m))) if i == fenced => {
                assert!(m.contains(&runs[i].execution_id.to_string()), "{m}")
            }
            (i, Err(StoreError::NotFound(_))) if i == RUNS + 1 => {}
            (i, Ok(())) if i != stale && i != fenced && i != RUNS + 1 => {}
            (i, other) => panic!("save {i}: unexpected answer {other:?}"),
        }
    }
    for (i, (saved, evs)) in round.into_iter().enumerate().take(RUNS + 1) {
        if i == stale || i == fenced {
            continue;
        }
        let at = if i == RUNS { twice } else { i };
        events[at].extend(evs);
        runs[at] = saved;
    }
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(store.get_run(t, r.execution_id).await.unwrap().as_ref(), Some(r), "run {i}");
        assert_eq!(store.run_events(t, r.execution_id).await.unwrap(), events[i], "events of run {i}");
    }
    assert_eq!(runs[twice].message, "round 3");
    assert_eq!(runs[0].changes.len(), 5 + 3);
}

conformance!(saves_arriving_together_are_each_answered_as_alone);
