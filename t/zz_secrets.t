# Runs last (the suite runs its files in name order): after all of the suite's traffic, no
# configured secret (the sources' keys, the admin key, the webhook secret; the test server's
# in t/conf/keys and those of the separate instances) appears in anything the run wrote:
# error logs, access logs, the stores (SQLite files with their WAL, or the PostgreSQL
# databases), the tests' own records. The keys' files and an instance's instance.json (the
# contract that hands its keys to scripts) are where secrets belong, and are left out.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use File::Find ();
use lib 't/lib';
use OSTest;

my $v = Apache::Test::vars();
my $logs = $v->{t_logs};

# traffic of its own, with a key, a wrong key and a drop-in envelope, so that the file has
# stores and logs to search when it runs alone as well
json_req('POST', '/orders', order_payload(reference => "ZS$$-1"), 'demo');
json_req('POST', '/orders', order_payload(reference => "ZS$$-2"), 'mage2');
Apache::TestRequest::POST(hub_url('/orders'), Authorization => 'Bearer not-a-key-of-anyone-here',
                          'Content-Type' => 'application/json', content => '{}');

my %secret;    # value => where it is configured
for my $f (glob("$v->{serverroot}/conf/keys/*.key"), glob("$logs/*/keys/*.key")) {
    my $k = read_file($f);
    $k =~ s/\s+$//;
    $secret{$k} = $f if length $k >= 16;
}

my @files;
File::Find::find({ no_chdir => 1, wanted => sub {
    if (-d $_ && (m{/keys$} || m{/cfg\w{4}$})) { $File::Find::prune = 1; return }
    return unless -f $_;
    return if m{/instance\.json$} || m{/expected_errors$};
    push @files, $_;
} }, $logs);

my @dumps;
if (($ENV{OS_TEST_LABEL} // '') eq 'pg') {
    # and the databases of the separate instances (OSTest::own_store)
    my @own = split /\n/, `psql -qtA -h '$ENV{OS_PG_SOCK}' -p '$ENV{OS_PG_PORT}' -U postgres postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'os\\_%'"`;
    for my $db (qw(ordersync ordersync_queue ordersync_locked), @own) {
        my $f = "$logs/pg_dump-$db.sql";
        system("pg_dump -h '$ENV{OS_PG_SOCK}' -p '$ENV{OS_PG_PORT}' -U postgres $db > '$f' 2>/dev/null") == 0
            or die "pg_dump $db failed";
        push @dumps, $f;
    }
}

plan tests => 3;

ok(keys(%secret) >= 5, 'the secrets to look for: ' . scalar(keys %secret) . ' keys');
ok((grep { /\.db$/ } @files) && (grep { m{/error_log$} } @files) && (grep { m{/access_log$} } @files),
   'there are stores and logs to search (' . scalar(@files) . ' files)');

my @found;
for my $f (@files, @dumps) {
    my $data = read_file($f);
    for my $k (keys %secret) {
        push @found, "$f holds the secret of $secret{$k}" if index($data, $k) >= 0;
    }
}
unlink @dumps;
is(scalar(@found), 0, 'no secret appears in any log or store the suite wrote')
    or diag(join("\n", @found));
