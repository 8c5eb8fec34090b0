//! Embeds an rpath to libtorch so `driftd` runs without `LD_LIBRARY_PATH`.
//! `LIBTORCH` is set by `scripts/env.sh` to the venv's `site-packages/torch`.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=sql");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
}
