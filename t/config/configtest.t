# apachectl -t on small configurations: the shipped files are accepted, an incomplete hub is
# refused with the directive and the reason, and bad values are refused by their parser.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use lib 't/lib';
use OSTest;

my $load = "LoadModule ordersync_module \@SO\@\n";
my $dbd  = "LoadModule dbd_module /usr/lib/apache2/modules/mod_dbd.so\n";
my $store = "DBDriver sqlite3\nDBDParams \@DIR\@/os.db\n";
my $src  = "OrderSyncSource demo key=file:\@KEYS\@/demo.key\n";
my $loc  = "<Location /ordersync>\n  SetHandler ordersync\n</Location>\n";
my $top  = Apache::Test::vars()->{top_dir};

my @bad = (
    # [ config body, pattern the output must show, name ]
    [ "$dbd$load$src$loc", qr/has no store: set DBDriver/, 'handler without a store' ],
    [ "$load$store$src$loc", qr/needs mod_dbd|Invalid command 'DBDriver'/, 'mod_dbd missing is named' ],
    [ "$dbd$load$store$loc", qr/has no OrderSyncSource/, 'hub without a source' ],
    [ "$dbd$load$store" . "OrderSyncSource demo\n$loc", qr/OrderSyncSource needs a source id and at least one key/, 'source without a key' ],
    [ "$dbd$load$store" . "OrderSyncSource demo prefix=X-\n$loc", qr/no key=\.\.\. given/, 'source with options but no key' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=\${OS_UNSET_VAR_FOR_TEST}\n$loc", qr/OrderSyncSource demo: key still contains '\$\{\.\.\.\}'/, 'unset ${VAR} key' ],
    [ "$dbd$load$store$src" . "OrderSyncAdminKey \${OS_UNSET_VAR_FOR_TEST}\n$loc", qr/OrderSyncAdminKey still contains/, 'unset ${VAR} admin key' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=short\n$loc", qr/OrderSyncSource demo: key from a literal value is shorter than 16 characters/, 'too short key' ],
    [ "$dbd$load$store" . "OrderSyncSource a key=file:\@KEYS\@/demo.key\nOrderSyncSource b key=file:\@KEYS\@/mage2.key\n$loc", qr/same reference prefix ''/, 'two sources, same prefix' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:/nonexistent/k\n$loc", qr/cannot read key file '\/nonexistent\/k'/, 'unreadable key file' ],
    [ "$dbd$load$store" . "OrderSyncSource 'de mo' key=file:\@KEYS\@/demo.key\n$loc", qr/may use only letters/, 'bad source id' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:\@KEYS\@/demo.key colour=red\n$loc", qr/unknown option 'colour'/, 'unknown source option' ],
    [ "$dbd$load$store$src" . "OrderSyncSource demo key=file:\@KEYS\@/mage2.key prefix=B\n$loc", qr/source 'demo' is declared twice/, 'duplicate source' ],
    [ "$dbd$load$store$src" . "OrderSyncSource x key=file:\@KEYS\@/mage2.key webhook=ftp://x\n$loc", qr/webhook must be an http/, 'bad webhook URL' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxBody 10\n$loc", qr/OrderSyncMaxBody must be an integer in 256\.\.67108864, got '10'/, 'max body range' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxDepth lots\n$loc", qr/OrderSyncMaxDepth must be an integer in 4\.\.512, got 'lots'/, 'max depth not a number' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxItems 0\n$loc", qr/OrderSyncMaxItems must be an integer in 1\.\.100000/, 'max items range' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxString 99999999\n$loc", qr/OrderSyncMaxString must be an integer/, 'max string range' ],
    [ "$dbd$load$store$src" . "OrderSyncQueueMax -1\n$loc", qr/OrderSyncQueueMax must be an integer/, 'queue max range' ],
    [ "$dbd$load$store$src" . "OrderSyncStoreTimeout 1\n$loc", qr/OrderSyncStoreTimeout must be an integer in 10\.\./, 'store timeout range' ],
    [ "$dbd$load$store$src" . "OrderSyncDurability sometimes\n$loc", qr/OrderSyncDurability must be 'normal' or 'full', got 'sometimes'/, 'durability value' ],
    [ "$dbd$load$store$src" . "<Location /x>\nOrderSyncAdminAuth maybe\n</Location>\n$loc", qr/OrderSyncAdminAuth must be 'key' or 'apache'/, 'admin auth value' ],
    [ "$dbd$load$store$src" . "<Location /x>\nOrderSyncSource demo2 key=file:\@KEYS\@/mage2.key\n</Location>\n$loc", qr/OrderSyncSource not allowed in <Location> context/, 'source in a <Location>' ],
    [ "$dbd$load$store$src" . "<LocationMatch ^/os>\nSetHandler ordersync\n</LocationMatch>\n", qr/needs a plain <Location \/path>/, 'LocationMatch mount' ],
    [ "$dbd$load$store$src" . "SetHandler ordersync\n", qr/must be inside a <Location>/, 'handler outside a Location' ],
    [ "$dbd$load$store$src<VirtualHost 127.0.0.1:1>\nServerName v\n<Location /hub>\nSetHandler ordersync\n</Location>\n</VirtualHost>\n"
      . "<VirtualHost 127.0.0.1:1>\nServerName w\nOrderSyncSource w1 key=\${OS_UNSET_VAR_FOR_TEST}\n<Location /hub>\nSetHandler ordersync\n</Location>\n</VirtualHost>\n",
      qr/OrderSyncSource w1: key still contains/, 'vhost with its own broken source' ],
);

my @good = (
    [ "$load", 'the module alone, no hub: Apache starts' ],
    [ "$load" . "OrderSyncSource demo key=\${OS_UNSET_VAR_FOR_TEST}\n", 'an unset key where no hub is mounted does not stop Apache' ],
    [ "$dbd$load$store$src$loc", 'a minimal hub' ],
    [ "$dbd$load$store$src" . "OrderSyncSource mage2 key=file:\@KEYS\@/mage2.key key=file:\@KEYS\@/demo-next.key prefix=M-\n"
      . "OrderSyncDurability full\nOrderSyncMaxBody 2048\nOrderSyncMaxDepth 8\nOrderSyncMaxItems 5\n"
      . "OrderSyncMaxString 64\nOrderSyncQueueMax 10\nOrderSyncStoreTimeout 100\nOrderSyncBatchMax 8\n$loc"
      . "<Location /ordersync/admin>\nOrderSyncAdminAuth apache\nRequire all granted\n</Location>\n", 'every directive with a valid value' ],
    [ "$dbd$load<VirtualHost 127.0.0.1:1>\nServerName v\n$store$src$loc</VirtualHost>\n", 'a hub inside a virtual host' ],
    [ "$dbd$load$store$src<IfModule no_such_module>\nSetHandler ordersync\n</IfModule>\n", 'a SetHandler in a skipped <IfModule> does not count' ],
);

# the shipped files, as a2enmod would include them, and the example site
my $shipped = read_file("$top/conf/ordersync.load") . read_file("$top/conf/ordersync.conf");
$shipped =~ s{/usr/lib/apache2/modules/mod_ordersync.so}{\@SO\@};
my $site = read_file("$top/conf/example-site.conf");
$site =~ s{file:/etc/apache2/ordersync/webshop1.key}{file:\@KEYS\@/demo.key};
$site =~ s{/var/lib/ordersync}{\@DIR\@};
$site =~ s{\*:80}{127.0.0.1:1};

plan tests => 2 * @bad + @good + 3;

for my $b (@bad) {
    my ($rc, $out) = configtest($b->[0]);
    isnt($rc, 0, "refused: $b->[2]");
    like($out, $b->[1], "message: $b->[2]") or diag($out);
}
for my $g (@good) {
    my ($rc, $out) = configtest($g->[0]);
    is($rc, 0, "accepted: $g->[1]") or diag($out);
}
my ($rc, $out) = configtest($shipped);
is($rc, 0, 'conf/ordersync.load + ordersync.conf as shipped are accepted') or diag($out);
($rc, $out) = configtest("$dbd$shipped$site", ORDERSYNC_MAGE2_KEY => 'k' x 24,
                         ORDERSYNC_ADMIN_KEY => 'a' x 24, ORDERSYNC_WEBHOOK_SECRET => 'w' x 24);
is($rc, 0, 'conf/example-site.conf is accepted') or diag($out);
($rc, $out) = configtest("$dbd$shipped$site");
like($out, qr/OrderSyncSource|still contains/, 'the example site without its environment says which secret is unset');
