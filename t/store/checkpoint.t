# SQLite: accepted orders are copied from the WAL into the database file in the background
# (a watchdog job every ~100 ms), not inside the commits that answer requests. Commits only
# append to the WAL, whose automatic checkpoint is moved out to 32 MB, so without the job the
# database file would not grow at all here.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan skip_all => 'checkpoints are SQLite only' if ($ENV{OS_TEST_LABEL} // '') eq 'pg';
plan tests => 5;

my $db = Apache::Test::vars()->{t_logs} . '/ordersync.db';
my $tag = "CK$$";
my $n = 100;
my $pad = 'x' x 1500;

# the store is made by the first order (this file may run alone)
is(json_req('POST', '/orders', order_payload(reference => "$tag-0"), 'demo')->code, 202,
   'a first order is accepted');
ok(-f $db, 'the store file exists');
my $before = -s $db;
my $accepted = 0;
for my $i (1 .. $n) {
    my $res = json_req('POST', '/orders', order_payload(reference => "$tag-$i",
                                                        options => { padding => "$pad$i" }), 'demo');
    $accepted++ if $res->code == 202;
}
is($accepted, $n, "$n orders of about 2 KB accepted");

my $want = $before + $n * length($pad);
# the job runs in one child; when that child goes, another takes it over within ~10 s
my $deadline = Time::HiRes::time() + 20;
Time::HiRes::sleep(0.1) while -s $db < $want && Time::HiRes::time() < $deadline;
cmp_ok(-s $db, '>=', $want, 'within seconds the orders are in the database file, not only in the WAL')
    or diag("database file: before $before bytes, now " . (-s $db) . " bytes; WAL: "
            . ((-s "$db-wal") // 'none'));

# and they read back from it like any other
my $res = json_req('GET', "/orders/demo/$tag-$n", undef, 'demo');
is($res->code, 200, 'the last order reads back');
