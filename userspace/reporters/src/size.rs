//! memray's `size_fmt`: three decimals and a 1000-based unit (`1.024kB`).

pub fn size_fmt(bytes: u64) -> String {
    let mut num = bytes as f64;
    for unit in ["", "k", "M", "G", "T", "P", "E", "Z"] {
        if num.abs() < 1000.0 {
            return format!("{num:5.3}{unit}B");
        }
        num /= 1000.0;
    }
    format!("{num:.1}YB")
}

#[cfg(test)]
mod tests {
    use super::size_fmt;

    #[test]
    fn formats_like_memray() {
        assert_eq!(size_fmt(0), "0.000B");
        assert_eq!(size_fmt(999), "999.000B");
        assert_eq!(size_fmt(1024), "1.024kB");
        assert_eq!(size_fmt(56_320), "56.320kB");
        assert_eq!(size_fmt(3_500_000_000), "3.500GB");
    }
}
