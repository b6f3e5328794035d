//! `experiments::malloc::keep_freed_memory` (its own test binary: it changes process-wide allocator settings
//! and counts this process's page faults).

/// Minor page faults of this process so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("comm") + 1..];
    after
        .split_whitespace()
        .nth(7)
        .expect("minflt")
        .parse()
        .expect("number")
}

/// A step that allocates, touches and frees 24 MiB in three blocks, as a tape step does.
fn step() {
    let blocks: Vec<Vec<u8>> = (0..3).map(|i| vec![i as u8 + 1; 8 << 20]).collect();
    std::hint::black_box(&blocks);
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn freed_memory_is_reused_without_page_faults() {
    // Default settings: the 8 MiB blocks are mmapped or trimmed, so steps fault again.
    step();
    let f0 = minor_faults();
    for _ in 0..10 {
        step();
    }
    let default = minor_faults() - f0;
    assert!(experiments::malloc::keep_freed_memory());
    step();
    let f1 = minor_faults();
    for _ in 0..10 {
        step();
    }
    let kept = minor_faults() - f1;
    // 10 steps touch 61,440 pages; reusing the heap touches none of them fresh.
    assert!(
        kept < 200,
        "{kept} page faults in 10 steps with kept memory"
    );
    assert!(
        default > 10 * kept.max(100),
        "default settings: {default} page faults"
    );
}
