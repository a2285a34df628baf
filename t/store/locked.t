# A store whose write lock someone else holds past OrderSyncStoreTimeout (300 ms here; with
# SQLite apr-util's driver adds up to 1.5 s of its own retries): the intake answers 503 with
# Retry-After and stores nothing; once the lock is free, it accepts.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan tests => 8;

my $pg = ($ENV{OS_TEST_LABEL} // '') eq 'pg';
my $tag = "L$$";
expect_error_log('ordersync: (the store could not commit|order [^ ]+ not stored|storing order)',
                 'database is locked|lock timeout|canceling statement due to lock timeout');

sub on_locked {
    my @a = @_;
    Apache::TestRequest::module('os_locked');
    my $res = json_req(@a);
    Apache::TestRequest::module('default');
    return $res;
}

# the store exists and has its schema before anyone locks it
is(on_locked('POST', '/orders', order_payload(reference => "$tag-0"), 'demo')->code, 202,
   'the store accepts an order');

# hold the write lock for 4 s from another connection
my $pid = fork // die "fork: $!";
if (!$pid) {
    if ($pg) {
        exec('psql', '-q', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT}, '-U', 'postgres',
             'ordersync_locked', '-c',
             'BEGIN; LOCK TABLE os_orders IN EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;');
    }
    else {
        my $db = Apache::Test::vars()->{t_logs} . '/locked.db';
        exec('sh', '-c', "(echo '.timeout 5000'; echo 'BEGIN IMMEDIATE;'; sleep 4; echo 'COMMIT;') | sqlite3 '$db'");
    }
    exit 1;
}
# wait until it holds the lock: another writer's attempt fails at once (SQLite; the holder
# waits out such an attempt should it come first), or the table's lock shows as granted
# (PostgreSQL)
sub lock_held {
    if ($pg) {
        my $n = `psql -qtA -h $ENV{OS_PG_SOCK} -p $ENV{OS_PG_PORT} -U postgres ordersync_locked -c "SELECT count(*) FROM pg_locks WHERE relation = 'os_orders'::regclass AND mode = 'ExclusiveLock' AND granted" 2>/dev/null`;
        return ($n // '') =~ /^\s*[1-9]/;
    }
    my $db = Apache::Test::vars()->{t_logs} . '/locked.db';
    my $out = `sqlite3 -cmd '.timeout 0' '$db' 'BEGIN IMMEDIATE; ROLLBACK;' 2>&1`;
    return $out =~ /locked|busy/i;
}
my $deadline = Time::HiRes::time() + 3;
Time::HiRes::sleep(0.02) until lock_held() || Time::HiRes::time() > $deadline;
ok(lock_held(), 'the other connection holds the write lock');

my $t0 = Time::HiRes::time();
my $res = on_locked('POST', '/orders', order_payload(reference => "$tag-1"), 'demo');
my $took = Time::HiRes::time() - $t0;
ok(problem_ok($res, 503, 'store-unavailable'), 'lock held elsewhere: 503 store-unavailable');
like($res->header('Retry-After') // '', qr/^\d+$/, '... with Retry-After');
ok($took < 3, sprintf('... answered before the lock was released (%.2f s)', $took));

waitpid($pid, 0);
is(on_locked('GET', "/orders/demo/$tag-1", undef, 'demo')->code, 404,
   'the refused order was not stored');
my $again = on_locked('POST', '/orders', order_payload(reference => "$tag-1"), 'demo');
is($again->code, 202, 'once the lock is free the same order is accepted');
is(on_locked('GET', "/orders/demo/$tag-1", undef, 'demo')->code, 200, 'and it is stored');
