fn main() {
    println!("nbkp");
}
