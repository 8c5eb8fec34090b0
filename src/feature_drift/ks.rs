//! Two-sample Kolmogorov–Smirnov p-values as SciPy 1.17 computes them in
//! `scipy.stats.ks_2samp(a, b)` (two-sided, `method='auto'`).
//!
//! SciPy's rules, reproduced here:
//! - `max(n1, n2) <= 10 000`: the exact distribution. With `g = gcd(n1, n2)` and
//!   `lcm = n1 / g * n2`, the statistic is rounded to `h / lcm` with `h = round(d * lcm)`
//!   (ties to even) and the reported statistic becomes that `h / lcm`; `h == 0` gives 1.
//!   Equal sizes use `_compute_prob_outside_square`, unequal sizes Hodges' inside method with
//!   Viehmann's recursion for `1 - p` (`_compute_outer_prob_inside_method`). A result outside
//!   `[0, 1]` falls back to the asymptotic branch, as SciPy does.
//! - otherwise (or after that fallback): `kstwo.sf(d, round(n1 n2 / (n1 + n2)))`, the exact
//!   one-sample two-sided Kolmogorov distribution at the effective size, evaluated with
//!   Simard & L'Ecuyer's choice of methods (`scipy.stats._ksstats._kolmogn`): Ruben–Gambino
//!   closed forms at the ends, Durbin's matrix (Marsaglia–Tsang–Wang), Pomeranz's recursion,
//!   Pelz–Good's series, and `2 * smirnov(n, d)` for the upper tail.
//!
//! `smirnov(n, d)` (the one-sided survival function, cephes in SciPy, computed there in
//! double-double) is summed here in `f64` from the Birnbaum–Tingey terms in log space: every
//! term is positive, so the sum keeps about 12 significant digits, far inside the 1e-6 the
//! conformance test asks for.

/// `ks_2samp`'s `MAX_AUTO_N`: `'auto'` is exact when both sizes are at most this.
const MAX_AUTO_N: usize = 10_000;

/// `2^128` and `2^-128`, SciPy's rescaling factors (`_EP128`, `_EM128`).
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;
/// cephes `MINLOG`: `exp` of anything below underflows.
const MINLOG: f64 = -7.083_964_185_322_641e2;

/// The two-sided p-value of a KS statistic `d` between samples of sizes `n1` and `n2`, and the
/// statistic SciPy reports with it (the exact branch rounds it to a multiple of `1 / lcm`).
pub(crate) fn ks_2samp_pvalue(d: f64, n1: usize, n2: usize) -> (f64, f64) {
    debug_assert!(n1 > 0 && n2 > 0);
    let mut d = d;
    if n1.max(n2) <= MAX_AUTO_N {
        let (d_exact, prob) = attempt_exact(n1, n2, d);
        d = d_exact;
        if let Some(p) = prob {
            return (d, p.clamp(0.0, 1.0));
        }
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    let p = kolmogn_sf(en.round_ties_even() as u64, d);
    (d, p.clamp(0.0, 1.0))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `_attempt_exact_2kssamp` (two-sided): the rounded statistic and, when the computation
/// succeeded with a probability in `[0, 1]`, that probability.
fn attempt_exact(n1: usize, n2: usize, d: f64) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) as u64 * n2 as u64;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (d, Some(1.0));
    }
    let prob = if n1 == n2 {
        prob_outside_square(n1 as i64, h as i64)
    } else {
        outer_prob_inside(n1 as i64, n2 as i64, g as i64, h as i64)
    };
    if (0.0..=1.0).contains(&prob) {
        (d, Some(prob))
    } else {
        (d, None)
    }
}

/// SciPy's `_compute_prob_outside_square(n, h)`: `P(D_{n,n} >= h / n)` for `h >= 1`, a
/// Horner-like alternating sum in SciPy's operation order. The one copy: the exact KS test
/// here and KSWIN (`detect/kswin.rs`) both call it.
pub(crate) fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0_f64;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0_f64;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// `_compute_outer_prob_inside_method(m, n, g, h)` (SciPy's pythran kernel): the proportion of
/// lattice paths from (0, 0) to (m, n) that leave the band `|x/m - y/n| < h / lcm(m, n)`.
fn outer_prob_inside(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    // SciPy sizes this `min(2 * maxj + 2, n + 1)`; every index it touches is below that, and
    // the extra room (ones, never read) only rules out an out-of-bounds panic.
    let mut a = vec![1.0_f64; (n + 2) as usize];
    for v in &mut a[minj as usize..maxj as usize] {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = (((ng * i - h) as f64 / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            val = (a[(jj + minj - lastminj) as usize] * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for v in &mut a[start..end] {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

// ---------------------------------------------------------------------------------------------
// kstwo.sf: scipy.stats._ksstats._kolmogn(n, x, cdf=False)
// ---------------------------------------------------------------------------------------------

const PI: f64 = std::f64::consts::PI;

fn pi_squared() -> f64 {
    PI.powf(2.0)
}
fn pi_four() -> f64 {
    PI.powf(4.0)
}
fn pi_six() -> f64 {
    PI.powf(6.0)
}
fn sqrt_2pi() -> f64 {
    (2.0 * PI).sqrt()
}
fn log_2pi() -> f64 {
    (2.0 * PI).ln()
}

/// Bernoulli-number coefficients of Stirling's series (SciPy's `_STIRLING_COEFFS`).
const STIRLING_COEFFS: [f64; 8] = [
    -2.955_065_359_477_124e-2,
    6.410_256_410_256_41e-3,
    -1.917_526_917_526_917_5e-3,
    8.417_508_417_508_418e-4,
    -5.952_380_952_380_952e-4,
    7.936_507_936_507_937e-4,
    -2.777_777_777_777_778e-3,
    8.333_333_333_333_333e-2,
];

/// `log(n! / n^n)` by Stirling's series.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING_COEFFS.iter().fold(0.0, |y, &c| y * x + c);
    n.ln() / 2.0 - n + log_2pi() / 2.0 + rn * poly
}

/// `x * 2^e`, without overflowing or underflowing on the way for large `|e|`.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    let big = 2f64.powi(1000);
    let small = 2f64.powi(-1000);
    while e > 1000 {
        x *= big;
        e -= 1000;
    }
    while e < -1000 {
        x *= small;
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// The survival function `P(D_n >= x)` of the one-sample two-sided Kolmogorov–Smirnov
/// statistic: SciPy's `kstwo.sf(x, n)`.
pub(crate) fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/2n <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            (1..=n).fold(1.0, |p, i| p * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0)))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip(1.0 - prob);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino.
        return clip(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754_693 {
            return clip(1.0 - dmtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip(1.0 - pomeranz_cdf(n, x));
        }
        return clip(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        dmtw_cdf(n, x)
    } else {
        clip(pelz_good_cdf(n, x))
    };
    clip(1.0 - cdf)
}

fn clip(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `_kolmogn_DMTW(n, d, cdf=True)`: Durbin's matrix algorithm as Marsaglia, Tsang and Wang
/// evaluate it, `P(D_n <= d)`.
fn dmtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut hexpnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > EP128 {
            for x in &mut hm {
                *x /= EP128;
            }
            hexpnt += 128;
        }
        nn /= 2;
    }
    let mut p = hpwr[(k - 1) * m + (k - 1)];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= 128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip(p)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// A Python slice `[start:stop]` of a sequence of length `len` (negative indices count from
/// the end; out-of-range bounds are clipped).
fn py_slice(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let norm = |i: i64| -> usize {
        let len = len as i64;
        let i = if i < 0 { i + len } else { i };
        i.clamp(0, len) as usize
    };
    let (s, e) = (norm(start), norm(stop));
    s..e.max(s)
}

/// `_pomeranz_compute_j1j2`: the non-zero range of row `i` of Pomeranz's recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `_kolmogn_Pomeranz(n, x, cdf=True)`: `P(D_n <= x)` by Pomeranz's recursion.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i64 = 0;
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_over_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m as f64;
    }

    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s): (i64, i64) = (0, 0);
    let mut j1 = pomeranz_j1j2(0, n, ll, ceilf, roundf).0;
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (new_j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = new_j1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let a = &v0[py_slice(npwrs, k1 - v0s, k1 - v0s + ln2)];
            let b = &pwrs[py_slice(npwrs, 0, ln2)];
            let conv = convolve(a, b);
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            let src = py_slice(conv.len(), conv_start, conv_start + conv_len);
            let dst = py_slice(npwrs, 0, conv_len);
            let len = src.len().min(dst.len());
            v1[dst.start..dst.start + len].copy_from_slice(&conv[src.start..src.start + len]);
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < max && max < EM128 {
                for v in &mut v1 {
                    *v *= EP128;
                }
                expnt -= 128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1[(n - v1s) as usize];
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += 128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip(ans)
}

/// `np.convolve(a, b)` (full mode).
fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// `_kolmogn_PelzGood(n, x, cdf=True)`: Pelz and Good's approximation of `P(D_n <= x)`.
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z.powf(2.0), z.powf(3.0), z.powf(4.0), z.powf(6.0));
    let qlog = -pi_squared() / 8.0 / zsquared;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();

    let k1a = -zsquared;
    let k1b = pi_squared() / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi_squared() / 4.0;
    let k2c = pi_four() * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi_six() * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi_four() * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi_squared() * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);

    let mut kk = [0.0_f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (msquared, mfour, msix) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (acc, c) in kk.iter_mut().zip(coeffs) {
            *acc *= qpower;
            *acc += c;
        }
    }
    let denom = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (acc, d) in kk.iter_mut().zip(denom) {
        *acc *= q;
        *acc *= sqrt_2pi();
        *acc /= d;
    }

    let q = (-pi_squared() / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2sum = 0.0;
    let mut k3sum = 0.0;
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let ksquared = kf * kf;
        let kspi = PI * kf;
        let qpwer = q.powf(ksquared);
        k2sum += ksquared * qpwer;
        k3sum += (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwer;
    }
    kk[2] += k2sum * (pi_squared() * sqrt_2pi() / (-36.0 * zthree));
    kk[3] += k3sum * (pi_squared() * sqrt_2pi() / (216.0 * zsix));
    for (i, acc) in kk.iter_mut().enumerate() {
        *acc /= nf.powf(i as f64 / 2.0);
    }
    kk.iter().sum()
}

/// The one-sided Smirnov survival function `P(D_n^+ >= x)`: SciPy's `scipy.special.smirnov`
/// (cephes), with the same special cases; the general case sums the Birnbaum–Tingey terms
/// `C(n, v) x (x + v/n)^(v-1) (1 - x - v/n)^(n-v)` for `0 <= v < n (1 - x)` in log space.
pub(crate) fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    // floor(n x) and its remainder, the product's rounding error included.
    let mut nxfl = (nf * x).floor();
    let mut alpha = nf.mul_add(x, -nxfl);
    if alpha < 0.0 {
        nxfl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        nxfl += 1.0;
        alpha = 0.0;
    }
    let nxfl = nxfl as u64;
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        // x <= 1/n.
        let cdf = x * (1.0 + x).powf(nf - 1.0);
        return clip(1.0 - cdf);
    }
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nxfl + 1 >= n {
        // x >= 1 - 1/n.
        return clip((nf * (-x).ln_1p()).exp());
    }
    if n > 1_000_000 {
        // cephes: n too big to sum, p ~ e^(-(6nx+1)^2 / 18n).
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        let sf = if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
        return clip(sf);
    }
    // Terms v = 0 ..= last, where 1 - x - v/n > 0.
    let last = if alpha == 0.0 { n - nxfl - 1 } else { n - nxfl };
    let n_terms = last + 1;
    let vmid = n / 2;
    let lnx = x.ln();
    let mut sum = (nf * (-x).ln_1p()).exp(); // v = 0: (1 - x)^n
    let mut ln_binom = 0.0_f64;
    for v in 1..n_terms {
        let vf = v as f64;
        ln_binom += (nf - vf + 1.0).ln() - vf.ln();
        let up = x + vf / nf;
        let down = (nf - vf) / nf - x;
        let term = if down > 0.0 {
            (ln_binom + lnx + (vf - 1.0) * up.ln() + (nf - vf) * down.ln()).exp()
        } else {
            0.0
        };
        sum += term;
        if term != 0.0 {
            if 4.0 * (n_terms - v) as f64 * term < f64::EPSILON * sum && v != n_terms - 1 {
                break;
            }
        } else if v > vmid {
            break;
        }
    }
    clip(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_small_samples_by_hand() {
        // [1,2,3] vs [4,5,6]: D = 1, the two extreme orderings of C(6,3) = 20.
        let (d, p) = ks_2samp_pvalue(1.0, 3, 3);
        assert_eq!(d, 1.0);
        assert!((p - 0.1).abs() < 1e-15, "{p}");
        // n1 = 1, n2 = 2, D = 1: 2 of the 3 orderings put the singleton at an end.
        let (_, p) = ks_2samp_pvalue(1.0, 1, 2);
        assert!((p - 2.0 / 3.0).abs() < 1e-15, "{p}");
        // D = 0 gives p = 1 on either branch.
        assert_eq!(ks_2samp_pvalue(0.0, 50, 70).1, 1.0);
        assert_eq!(ks_2samp_pvalue(0.0, 50, 70_000).1, 1.0);
    }

    #[test]
    fn kolmogn_closed_forms() {
        // t = n x <= 1/2: D_n >= x surely.
        assert_eq!(kolmogn_sf(10, 0.04), 1.0);
        // n = 1: D_1 = max(U, 1 - U) >= x with probability 2 (1 - x) for x >= 1/2.
        assert!((kolmogn_sf(1, 0.7) - 0.6).abs() < 1e-15);
        // Smirnov n = 2, x >= 1/2: P(D+ >= x) = (1 - x)^2.
        assert!((smirnov_sf(2, 0.6) - 0.16).abs() < 1e-15);
    }

    #[test]
    fn smirnov_agrees_with_its_asymptotic_tail() {
        // For large n, P(D+ >= x) ~ exp(-2 n x^2) (to leading order).
        let (n, x) = (1_000_000u64, 0.001);
        let exact = smirnov_sf(n, x);
        let approx = (-2.0 * n as f64 * x * x).exp();
        assert!((exact / approx - 1.0).abs() < 0.01, "{exact} vs {approx}");
    }

    #[test]
    fn python_slices() {
        assert_eq!(py_slice(5, 1, 3), 1..3);
        assert_eq!(py_slice(5, 3, 10), 3..5);
        assert_eq!(py_slice(5, -2, 5), 3..5);
        assert_eq!(py_slice(5, 4, 2), 4..4);
    }
}
