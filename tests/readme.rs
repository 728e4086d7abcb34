//! The README promises two commands on a fresh machine; CI must run the second one unchanged.

mod common;

fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(common::workspace_root().join("README.md"))
        .expect("README.md is readable");
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            commands.push(line.trim().to_string());
        }
        if commands.len() == 2 && !in_block {
            break;
        }
    }
    commands
}

#[test]
fn readme_starts_with_main_job_and_test_command() {
    let commands = readme_commands();
    assert_eq!(
        commands.len(),
        2,
        "README must open with two one-line commands: {commands:?}"
    );
    assert!(
        commands[0].starts_with("cargo run"),
        "main job: {}",
        commands[0]
    );
    assert!(
        commands[1].starts_with("cargo test"),
        "test command: {}",
        commands[1]
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let test_command = readme_commands().remove(1);
    let ci = std::fs::read_to_string(common::workspace_root().join(".ci/run")).expect(".ci/run");
    let last_command = ci
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect(".ci/run has commands");
    assert_eq!(
        last_command, test_command,
        ".ci/run must end with the README's test command"
    );
}
