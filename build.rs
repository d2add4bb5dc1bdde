//! Link settings of the bridge's binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        // Relative relocations packed (DT_RELR): the position-independent binary's table
        // of them, 0.5 MB in RELA form, takes a few KB. Links with GNU ld 2.38 or later and
        // runs on glibc 2.36 or later (Debian 12, the container image's base).
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
